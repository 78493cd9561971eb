"""The installed PySide6 must not leak references on Signal.emit (docs/adr/0004)."""

import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def test_signal_emit_keeps_refcount_of_true():
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(200):
        probe.ping.emit()
    assert sys.getrefcount(True) - before > -50, (
        "this PySide6 drops a reference to True on every emit; install PySide6-Essentials<6.12")


def test_plain_qt_calls_keep_refcount_of_none():
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(1000):
        obj.setObjectName("x")
    assert sys.getrefcount(None) - before > -50, (
        "this PySide6 drops a reference to None on Qt calls; install PySide6-Essentials<6.12")

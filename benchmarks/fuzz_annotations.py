"""Fuzz the annotation reader and everything that follows it: 10,000 hostile files.

Each case is a valid ``.dentseg.json`` (phantom truth, a ``dentseg predict``-style file with
provenance, a two-part region) changed by one to three seeded mutations: hostile values
anywhere (NaN, Infinity, 1e400, 5,000-digit integers, lone surrogates, deep nesting, wrong
types), hostile geometry (200-part and 1,000-part regions, 100,000 to 400,000 vertices, files past 16 MiB,
self-crossing "spaghetti" outlines, bow-ties, unclosed or short rings, coordinates of
1e308), hostile spacing (1e308, 5e-324, 0, negative) and damaged bytes (truncated,
flipped, invalid UTF-8, a byte-order mark). Every file goes through what the app and the
``measure`` command do with it: load, measure, the CSV and JSON report, save and load
again, the overlay geometry. Counted:

* ``refused``   - a ``DentsegError`` naming the problem (the intended outcome for bad files);
* ``ok``        - read and measured;
* ``traceback`` - any other exception (a bug);
* ``nonfinite`` - inf/NaN written into a report or a saved file (a bug);
* ``hang``      - one file took more than ``--hang-s`` (5 s) of CPU time, or more than
  ``--kill-s`` (30 s) of wall time, when the child process running the cases is killed and
  restarted (so a real hang is counted, not waited for). CPU time, because on a shared
  machine the wall time of the same work varies four-fold; both are printed;
* ``absurd``    - a measurement above 1e6 (mm, mm2, degrees): reported, not a failure;
* ``generator`` - the mutation itself ran out of the child's 4 GiB (not a DentSeg outcome).

    python benchmarks/fuzz_annotations.py                 # 10,000 cases, ~10 min on 2 cores
    python benchmarks/fuzz_annotations.py -n 500 --seed 3

The test suite runs a few hundred of the same mutations in-process
(``tests/test_fuzz_annotations.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.annotation import Annotation, load_annotation, save_annotation  # noqa: E402
from dentseg_gui.core.errors import DentsegError  # noqa: E402

OUTCOMES = ("ok", "refused", "traceback", "nonfinite", "hang", "generator")
ABSURD = 1e6

# --------------------------------------------------------------------------- valid starting files


def base_documents(n_phantoms: int = 3) -> list[dict]:
    """Valid annotation documents (JSON dicts) the mutations start from."""
    from dentseg_gui.core.measurements import apply_measurements
    from dentseg_gui.core.phantom import generate_phantom

    docs = []
    for seed in range(n_phantoms):
        case = generate_phantom(100 + seed, "standard")
        docs.append(apply_measurements(case.annotation).to_json_dict())
    # a `dentseg predict`-style file: provenance per item, quality verdict
    pred = json.loads(json.dumps(docs[0]))
    stamp = {"source": "model", "model": "LU-Net phantom v2", "predicted_at": "2025-01-01T00:00:00+00:00"}
    pred["provenance"] = {"source": "LU-Net prediction", "model": "LU-Net phantom v2",
                          "quality": {"level": "check", "reasons": ["weak apex"]},
                          "regions": {k: dict(stamp) for k in ("PAB", "enamel")},
                          "landmarks": {k: dict(stamp) for k in pred["landmarks"]}}
    docs.append(pred)
    # a two-part region as a MultiPolygon, and a minimal file
    two = json.loads(json.dumps(docs[1]))
    ring = two["regions"]["PAB"]["coordinates"][0]
    shifted = [[x + 30.0, y] for x, y in ring]
    two["regions"]["PAB"] = {"type": "MultiPolygon", "coordinates": [[ring], [shifted]]}
    docs.append(two)
    docs.append({"format": "dentseg-annotation", "version": 1,
                 "image": {"path": "x.png", "width": 64, "height": 48},
                 "pixel_spacing_mm": [0.1, 0.1],
                 "regions": {"PAB": {"type": "Polygon",
                                     "coordinates": [[[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]]]}},
                 "landmarks": {"CEJ_labial": [5, 40], "CEJ_palatal": [25, 40], "apex": [20, 2]}})
    return docs


# --------------------------------------------------------------------------- mutations

_RAW_VALUES = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e308", "-1e308", "5e-324",
               "1" + "0" * 40, "9" * 5000, "-" + "9" * 400, '"\\ud800"', '"\\udcff x"', '"\\ud83d"',
               "0", "-1", "0.0", '""', '"x"', "null", "true", "false", "[]", "{}", "[[]]",
               '"' + "a" * 100_000 + '"', "[1, 2, 3]", '{"type": "Polygon"}']


class _Raw:
    """A value written verbatim into the JSON text (NaN, 1e400, huge integers ...)."""

    def __init__(self, text: str):
        self.text = text


def _random_path(doc, rng: np.random.Generator) -> tuple:
    """A random path into the document (a random descent; containers can be picked too)."""
    path, obj = (), doc
    while isinstance(obj, (dict, list)) and obj:
        keys = sorted(obj) if isinstance(obj, dict) else range(len(obj))
        k = list(keys)[int(rng.integers(len(obj)))] if isinstance(obj, dict) else int(rng.integers(len(obj)))
        path, obj = path + (k,), obj[k]
        if rng.random() < 0.25:
            break
    return path


def _set(doc, path, value):
    obj = doc
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _rings(doc):
    """(path, ring) of every ring in the regions."""
    out = []
    regions = doc.get("regions") if isinstance(doc, dict) else None
    for name, g in (regions.items() if isinstance(regions, dict) else ()):
        if not isinstance(g, dict) or not isinstance(g.get("coordinates"), list):
            continue
        polys = [g["coordinates"]] if g.get("type") == "Polygon" else g["coordinates"]
        for i, poly in enumerate(polys):
            if not isinstance(poly, list):
                continue
            for j, ring in enumerate(poly):
                if isinstance(ring, list) and ring and all(isinstance(p, list) for p in ring):
                    base = ("regions", name, "coordinates") + ((j,) if g.get("type") == "Polygon" else (i, j))
                    out.append((base, ring))
    return out


def _deep(depth: int):
    v = []
    for _ in range(depth):
        v = [v]
    return v


def _ring_array(ring) -> np.ndarray | None:
    try:
        a = np.asarray(ring, dtype=float)
        return a if a.ndim == 2 and a.shape[1] == 2 and np.isfinite(a).all() else None
    except (TypeError, ValueError, OverflowError):
        return None


def mutate_doc(doc: dict, rng: np.random.Generator, scale: float = 1.0):
    """Apply one structured mutation in place (may return a replacement document)."""
    kind = rng.integers(0, 16)
    rings = _rings(doc)
    if kind == 0:  # a hostile value anywhere
        path = _random_path(doc, rng)
        if path:
            _set(doc, path, _Raw(_RAW_VALUES[rng.integers(len(_RAW_VALUES))]))
    elif kind == 1:  # spacing
        doc["pixel_spacing_mm"] = [_Raw(rng.choice(["1e308", "5e-324", "0", "-0.1", "1e9", "1e-9", "NaN",
                                                     "99.9", "1" + "0" * 400, "0.15"])) for _ in range(2)]
        if rng.random() < 0.2:
            doc["pixel_spacing_mm"] = _Raw(rng.choice(["[1]", "[1, 2, 3]", '"0.1"', "0.1", "{}"]))
    elif kind == 2 and rings:  # huge coordinates
        path, ring = rings[rng.integers(len(rings))]
        k = rng.integers(len(ring))
        _set(doc, path + (k,), [_Raw(rng.choice(["1e308", "-1e308", "1e15", "1e400", "9" * 400])),
                                ring[k][1] if len(ring[k]) > 1 else 0])
    elif kind == 3 and rings:  # many parts: copies of a ring, overlapping or apart
        name = rng.choice(sorted(doc["regions"]))
        _, ring = rings[0]
        a = _ring_array(ring)
        if a is not None:
            # parts of at most 400 vertices (24 in the in-suite run): copies of a ring an earlier
            # mutation made 400,000 long once asked the generator itself for 21 GB
            keep = 24 if scale < 1 else 400
            a = np.vstack([a[:-1:max(1, len(a) // keep)], a[:1]])
            n = int(rng.choice([50, 200, 1000, 1500]))
            spread = float(rng.choice([0.0, 5.0, 60.0]))
            parts = [[(a + rng.normal(0, spread, 2)).round(3).tolist()] for _ in range(n)]
            doc["regions"][name] = {"type": "MultiPolygon", "coordinates": parts}
    elif kind == 4 and rings:  # many vertices
        path, ring = rings[rng.integers(len(rings))]
        a = _ring_array(ring)
        if a is not None:
            n = int(rng.choice([20_000, 99_000, 150_000, 400_000]) * scale)
            t = np.linspace(0, len(a) - 1, max(n, 4))
            dense = np.c_[np.interp(t, np.arange(len(a)), a[:, 0]), np.interp(t, np.arange(len(a)), a[:, 1])]
            _set(doc, path, dense.round(3).tolist())
    elif kind == 5 and rings:  # self-crossing outlines: shuffled vertices ("spaghetti") or a bow-tie
        path, ring = rings[rng.integers(len(rings))]
        a = _ring_array(ring)
        if a is not None:
            if rng.random() < 0.5:
                n = int(rng.choice([20, 100, 300, 1000, 3000]))
                idx = rng.integers(0, len(a), n)
                pts = a[idx]
            else:
                pts = a.copy()
                i, j = sorted(rng.integers(0, len(a), 2))
                pts[[i, j]] = pts[[j, i]]
            pts = np.vstack([pts, pts[:1]])
            _set(doc, path, pts.round(3).tolist())
    elif kind == 6 and rings:  # broken rings
        path, ring = rings[rng.integers(len(rings))]
        choice = rng.integers(0, 6)
        new = ([ring[0], ring[1], ring[0]] if choice == 0 else ring[:-1] if choice == 1 else
               [] if choice == 2 else [ring[0]] * 5 if choice == 3 else [[p] for p in ring] if choice == 4
               else [[p[0], p[1], 0] for p in ring])
        _set(doc, path, new)
    elif kind == 7:  # region type / shape mismatches
        regions = doc.get("regions")
        if isinstance(regions, dict) and regions:
            name = rng.choice(sorted(regions))
            g = regions[name]
            if isinstance(g, dict):
                g["type"] = rng.choice(["MultiPolygon", "Polygon", "Point", "GeometryCollection", 7])
                if rng.random() < 0.3:
                    g["coordinates"] = _deep(int(rng.choice([3, 4, 8])))
    elif kind == 8:  # landmarks
        lms = doc.get("landmarks") or {}
        if lms:
            name = rng.choice(sorted(lms))
            other = rng.choice(sorted(lms))
            opt = rng.integers(0, 5)
            lms[name] = (list(lms[other]) if opt == 0 else [_Raw("1e308"), 0] if opt == 1 else
                         [_Raw("NaN"), 1] if opt == 2 else "apex" if opt == 3 else [1e5, -1e5])
    elif kind == 9:  # image size
        img = doc.get("image")
        if isinstance(img, dict):
            img[rng.choice(["width", "height"])] = _Raw(rng.choice(
                ["0", "-1", "1000000000", "1.5", '"384"', "true", "9" * 5000, "1", "65536"]))
    elif kind == 10:  # deep nesting in provenance / extra keys
        depth = int(rng.choice([40, 500, 5000, 100_000]))
        doc.setdefault("provenance", {})
        if isinstance(doc["provenance"], dict):
            doc["provenance"]["deep"] = _Raw("[" * depth + "]" * depth)
    elif kind == 11:  # measurements
        doc["measurements"] = {"pab_area_mm2": _Raw(rng.choice(["NaN", "1e400", "Infinity", "true", '"x"', "1e308"]))}
        if rng.random() < 0.3:
            doc["measurements_missing"] = {"pab_area_mm2": _Raw(rng.choice(["1", "[]", "9" * 5000, '"\\ud800"']))}
    elif kind == 12:  # a lone surrogate in a name or a path
        target = rng.integers(0, 3)
        bad = _Raw('"case\\ud800.png"')
        if target == 0 and isinstance(doc.get("image"), dict):
            doc["image"]["path"] = bad
        elif target == 1 and isinstance(doc.get("regions"), dict) and doc["regions"]:
            k = sorted(doc["regions"])[0]
            doc["regions"]["\ud800" + k] = doc["regions"].pop(k)
        else:
            doc.setdefault("provenance", {})
            if isinstance(doc["provenance"], dict):
                doc["provenance"]["edited_by"] = bad
    elif kind == 13 and rings:  # holes: outside the shell, crossing it, hundreds of them
        path, ring = rings[0]
        a = _ring_array(ring)
        poly_path = path[:-1]
        if a is not None:
            poly = _get(doc, poly_path)
            n = int(rng.choice([1, 50, 600]))
            c = a.mean(axis=0)
            for _ in range(n):
                off = rng.normal(0, float(rng.choice([2.0, 40.0])), 2)
                sq = (c + off + np.array([[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]])).round(3).tolist()
                poly.append(sq)
    elif kind == 14:  # scale the whole geometry by a huge or tiny factor
        f = float(rng.choice([1e6, 1e12, 1e-12, -1.0]))
        for path, ring in rings:
            a = _ring_array(ring)
            if a is not None:
                _set(doc, path, (a * f).tolist())
    else:  # drop or duplicate a top-level key
        key = rng.choice(sorted(doc))
        if rng.random() < 0.5:
            doc.pop(key)
        else:
            doc[key + "_copy"] = doc[key]
    return doc


def _dumps(doc) -> str:
    raws: list[str] = []

    def default(o):
        if isinstance(o, _Raw):
            raws.append(o.text)
            return f"__RAW_{len(raws) - 1}__"
        raise TypeError(type(o).__name__)

    text = json.dumps(doc, ensure_ascii=True, default=default)
    for i, r in enumerate(raws):
        text = text.replace(f'"__RAW_{i}__"', r, 1)
    return text


def mutate_bytes(raw: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(0, 7)
    b = bytearray(raw)
    if kind == 0 and len(b) > 2:  # truncated
        return bytes(b[: rng.integers(0, len(b))])
    if kind == 1:  # flipped bytes
        for _ in range(int(rng.integers(1, 20))):
            i = rng.integers(len(b))
            b[i] = int(rng.integers(0, 256))
        return bytes(b)
    if kind == 2:  # invalid UTF-8
        i = rng.integers(len(b))
        return bytes(b[:i]) + b"\xff\xfe\xc3" + bytes(b[i:])
    if kind == 3:
        return b"\xef\xbb\xbf" + bytes(b)
    if kind == 4:  # a lone surrogate escape inside the first string
        i = raw.find(b'"', 1)
        return raw[: i + 1] + b"\\udc80" + raw[i + 1:] if i > 0 else raw
    if kind == 5:
        return raw * 2  # two documents back to back
    return raw[:-1] + b" " * (17 * 2**20) + raw[-1:]  # valid JSON past the 16 MiB size limit


def make_case(bases: list[dict], seed: int, scale: float = 1.0) -> bytes:
    """The bytes of hostile file number ``seed`` (deterministic)."""
    rng = np.random.default_rng(seed)
    doc = json.loads(json.dumps(bases[int(rng.integers(len(bases)))]))
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        try:
            doc = mutate_doc(doc, rng, scale)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            pass  # a mutation that no longer fits the already mutated document
    raw = _dumps(doc).encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:
        raw = mutate_bytes(raw, rng)
    return raw


# --------------------------------------------------------------------------- the pipeline under test


def _strict_json(text: str) -> None:
    def refuse(c):
        raise ValueError(f"non-finite constant {c} written")
    json.loads(text, parse_constant=refuse)


def check_file(path: Path, workdir: Path) -> tuple[str, str, float]:
    """(outcome, detail, largest |measurement|) of one file through the whole pipeline."""
    from dentseg_gui.core.measurements import overlay_geometry
    from dentseg_gui.core.report import csv_text, row_for, write_json

    try:
        ann = load_annotation(path)
    except DentsegError as exc:
        return "refused", str(exc)[:200], 0.0
    except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
        return "traceback", f"load: {type(exc).__name__}: {exc}"[:300] + _tb(), 0.0
    try:
        row = row_for(ann, path)
        text = csv_text([row])
        for cell in text.splitlines()[1].split(","):
            if cell.strip().lower() in ("inf", "-inf", "nan", "infinity", "-infinity"):
                return "nonfinite", f"CSV cell {cell}", 0.0
        out_json = workdir / "report.json"
        write_json([row], out_json)
        _strict_json(out_json.read_text(encoding="utf-8"))
        save_annotation(ann, workdir / "again.dentseg.json")
        saved = (workdir / "again.dentseg.json").read_text(encoding="utf-8")
        _strict_json(saved)
        again = load_annotation(workdir / "again.dentseg.json")
        overlay_geometry(again)
    except DentsegError as exc:
        return "traceback", f"after a successful load, {type(exc).__name__}: {exc}"[:300], 0.0
    except ValueError as exc:
        if "non-finite" in str(exc) or "Out of range float" in str(exc):
            return "nonfinite", str(exc)[:200], 0.0
        return "traceback", f"{type(exc).__name__}: {exc}"[:300] + _tb(), 0.0
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"[:300] + _tb(), 0.0
    values = [abs(v) for v in row.measurements.values.values() if v is not None]
    return "ok", "", max(values, default=0.0)


def _tb() -> str:
    return " | " + traceback.format_exc(limit=-3).replace("\n", " ")[-600:]


def run_inprocess(n: int, seed: int = 0, scale: float = 1.0, workdir: Path | None = None):
    """Run ``n`` cases in this process: (Counter of outcomes, failures, slowest CPU seconds, absurd)."""
    bases = base_documents()
    counts: Counter = Counter()
    failures: list[tuple[int, str, str]] = []
    slowest = 0.0
    absurd = 0
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir or tmp)
        path = wd / "case.dentseg.json"
        for i in range(n):
            path.write_bytes(make_case(bases, seed * 1_000_003 + i, scale))
            t0 = time.process_time()  # CPU: the wall time of a shared machine varies four-fold
            outcome, detail, biggest = check_file(path, wd)
            dt = time.process_time() - t0
            slowest = max(slowest, dt)
            counts[outcome] += 1
            absurd += biggest > ABSURD
            if outcome not in ("ok", "refused"):
                failures.append((i, outcome, detail))
    return counts, failures, slowest, absurd


# --------------------------------------------------------------------------- the benchmark (child process + watchdog)


#: address-space limit of the child: a blow-up (of DentSeg or of the generator) is a
#: MemoryError that is counted, not the machine's OOM killer
CHILD_MEMORY = 4 * 2**30


def _child(conn, seed: int, start: int, n: int) -> None:
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    except (ImportError, ValueError, OSError):
        pass
    bases = base_documents()
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(tmp)
        path = wd / "case.dentseg.json"
        for i in range(start, n):
            try:
                path.write_bytes(make_case(bases, seed * 1_000_003 + i))
            except MemoryError:
                conn.send(("done", i, "generator", "the generator ran out of memory", 0.0, 0.0, 0.0))
                continue
            conn.send(("start", i))
            t0, c0 = time.perf_counter(), time.process_time()
            outcome, detail, biggest = check_file(path, wd)
            conn.send(("done", i, outcome, detail, time.perf_counter() - t0, biggest,
                       time.process_time() - c0))
    conn.send(("end",))


def run_watched(n: int, seed: int, hang_s: float, kill_s: float = 30.0) -> dict:
    ctx = mp.get_context("spawn")
    counts: Counter = Counter()
    failures: list = []
    times: list[float] = []
    cpu: list[float] = []
    slow: list[tuple] = []
    absurd_cases: list[tuple[int, float]] = []
    absurd = 0
    i = 0
    t_all = time.perf_counter()
    while i < n:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(child, seed, i, n), daemon=True)
        proc.start()
        current, started = None, time.perf_counter()
        while True:
            if parent.poll(0.2):
                msg = parent.recv()
                if msg[0] == "start":
                    current, started = msg[1], time.perf_counter()
                elif msg[0] == "done":
                    _, k, outcome, detail, dt, biggest, dcpu = msg
                    if outcome == "generator":
                        counts[outcome] += 1
                        i = k + 1
                        current = None
                        continue
                    if dcpu > hang_s and outcome in ("ok", "refused"):
                        failures.append((k, "hang", f"{dcpu:.1f} s of CPU ({outcome}: {detail[:120]})"))
                        outcome = "hang"
                    counts[outcome] += 1
                    times.append(dt)
                    cpu.append(dcpu)
                    if biggest > ABSURD:
                        absurd_cases.append((k, biggest))
                    slow.append((dcpu, dt, k, outcome, detail[:160]))
                    slow = sorted(slow, reverse=True)[:5]
                    absurd += biggest > ABSURD
                    if outcome not in ("ok", "refused"):
                        failures.append((k, outcome, detail))
                    i = k + 1
                    current = None
                    if i % 500 == 0:
                        print(f"  {i}/{n} {dict(counts)}", flush=True)
                else:
                    i = n
                    break
            elif current is not None and time.perf_counter() - started > kill_s:
                proc.kill()
                proc.join()
                counts["hang"] += 1
                failures.append((current, "hang", f"> {kill_s:g} s wall, killed"))
                i = current + 1
                break
            elif not proc.is_alive() and not parent.poll(0):
                if current is not None:  # died on this case (a crash of the interpreter)
                    counts["traceback"] += 1
                    failures.append((current, "traceback", f"child died (exit {proc.exitcode})"))
                    i = current + 1
                break
        proc.join(timeout=1)
    return {"counts": counts, "failures": failures, "times": times, "cpu": cpu, "absurd": absurd, "absurd_cases": absurd_cases, "slowest": slow,
            "wall_s": time.perf_counter() - t_all}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-s", type=float, default=5.0, help="CPU seconds of one file that count as a hang")
    ap.add_argument("--kill-s", type=float, default=30.0, help="wall seconds after which the child is killed")
    args = ap.parse_args(argv)
    print(f"fuzzing {args.n} annotation files (seed {args.seed}, hang = one file > {args.hang_s:g} s of CPU "
          f"or > {args.kill_s:g} s wall)")
    r = run_watched(args.n, args.seed, args.hang_s, args.kill_s)
    counts = r["counts"]
    t = np.asarray(r["times"] or [0.0])
    c = np.asarray(r["cpu"] or [0.0])
    print()
    print("| outcome | files |")
    print("|---|---|")
    for k in OUTCOMES:
        print(f"| {k} | {counts.get(k, 0)} |")
    print(f"| absurd (a measurement > {ABSURD:g}; reported, not a failure) | {r['absurd']} |")
    print()
    print(f"per file, CPU: median {np.median(c) * 1000:.1f} ms, 99th percentile {np.percentile(c, 99) * 1000:.0f} ms, "
          f"max {c.max():.2f} s; wall: median {np.median(t) * 1000:.1f} ms, max {t.max():.2f} s; "
          f"all files {r['wall_s']:.0f} s wall")
    print("slowest files (CPU):")
    for dcpu, dt, k, outcome, detail in r["slowest"]:
        print(f"  case {k}: {dcpu:.2f} s CPU, {dt:.2f} s wall, {outcome}{': ' + detail if detail else ''}")
    for k, biggest in r["absurd_cases"][:10]:
        print(f"  case {k}: absurd, a measurement of {biggest:.4g}")
    for k, outcome, detail in r["failures"][:20]:
        print(f"  case {k}: {outcome}: {detail}")
    bad = sum(counts.get(k, 0) for k in ("traceback", "nonfinite", "hang"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Exchange with other tools: labelme and COCO (import + export), DICOM SEG + SR (export).

Qt-free and torch-free like the rest of ``core``. Every reader turns foreign
annotations into normal DentSeg cases (the image plus its ``.dentseg.json``);
every writer starts from ``Annotation`` objects, so the GUI can export the open
case with its unsaved edits. Long runs take ``progress(done, total, text)`` and
``should_stop()`` callbacks (the shape the GUI's workers pass). docs/interop.md
shows every command; docs/adr/0009-interop-polygons-without-holes.md says how holes and
several parts travel through formats whose polygons have no holes.
"""

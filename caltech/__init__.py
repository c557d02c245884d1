"""ResNet-18 on Caltech-101: the logic behind the top-level scripts, one module per concern.

Data:      source (find, download, unpack) -> split (the 24/6/rest split folder) ->
           transforms (the published presets, batched crop/flip) -> cache (resized uint8 images) ->
           datasets (loaders yielding ready batches on the device)
Model:     model (ResNet-18 or any torchvision classifier, its new head, two parameter groups, rebuilt
           from a checkpoint for evaluate.py and predict.py)
Training:  runtime (every device-dependent choice: precision, memory format, eval batch) -> optim
           (optimiser, schedule, whether one run's schedule is a prefix of another's) -> engine (the one
           train loop and eval loop) -> checkpoint (plain dicts, atomic, safe load, lookup) -> runlog
           (TensorBoard) -> metrics (overall, mean per-class, top-5) -> runs (how a run ends: early
           stopping, its test evaluation and metrics.json, the shorter runs of a shared prefix)
Grid:      grid (trials, their prefix groups, results CSV, choice on validation), ray_tune (the optional
           Ray backend, running whatever callable trains a group)
Reporting: report (the whole report) over tblogs (run folders, their TensorBoard scalars), plots (matplotlib
           figures) and tables (results CSV, evaluate.py's tables, RESULTS.md; pandas); bench (side-by-side speed)
"""

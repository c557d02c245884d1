"""ResNet-18 on Caltech-101: the logic behind the top-level scripts, one module per concern.

Data:      source (find, download, unpack) -> split (the 24/6/rest split folder) ->
           transforms (the published presets, batched crop/flip) -> cache (resized uint8 images) ->
           datasets (loaders yielding ready batches on the device)
Model:     model (ResNet-18 or any torchvision classifier, its new head, two parameter groups, rebuilt
           from a checkpoint for evaluate.py and predict.py)
Training:  runtime (every device-dependent choice, made once: device, precision, memory format, eval batch,
           threads) -> optim (optimiser, schedule, whether one run's schedule is a prefix of another's) -> engine
           (the one train loop and eval loop) -> checkpoint (plain dicts, atomic, safe load, lookup; the run
           folder layout; a checkpoint's settings) -> outputs (what a run leaves: its folders, logs, best/last,
           test evaluation and metrics.json; early stopping) -> tblog (TensorBoard, written and read; every tag
           name) -> metrics (overall, mean per-class, top-5)
Grid:      grid (trials, their prefix groups, choice on validation) -> results (the results CSV: its columns,
           a row's identity, read and checked, written under a lock), ray_tune (the optional Ray backend, running
           whatever callable trains a group)
Reporting: report (the whole report) over tblog (run folders, their TensorBoard scalars), plots (matplotlib
           figures) and tables (evaluate.py's tables, RESULTS.md's; pandas). bench.py holds its own measurements.
"""

"""ResNet-18 on Caltech-101: the logic behind the top-level scripts, in four sub-packages over a small base.

Base:      utils (errors for people, atomic writes, seeding) -> layout (the folder layout) -> recipe (every
           flag of train.py, declared once: type, default, help, limits, tag, legend words, older value) ->
           cli (parsers built from the recipe, one-sentence refusals) -> names (each metric's key, column,
           tag and words; run-name formats and their parser) -> text (fixed-width and markdown tables)
data:      source (find, download, unpack) -> images (extensions, decoding) -> split (the 24/6/rest split
           folder) -> transforms (the published presets, batched crop/flip) -> cache (resized uint8 images) ->
           loaders (batches on the device)
training:  runtime (device, precision, memory format, decided once) -> model -> optim -> engine (the train and
           eval loops) -> metrics -> checkpoint -> tblog (TensorBoard, written) -> outputs (what a run leaves) ->
           setup (flags checked and resolved) -> fit (one run, start to end) ; evaluation (evaluate.py's tables)
grid:      trials (a run's identity and name, the product, prefix groups, choice on validation) -> results (the
           results CSV) -> search (the grid, run) ; ray_tune (the optional parallel backend)
report:    runs (run folders read back) -> catalogue (what each run is, which runs are chosen) -> labels ->
           figures (matplotlib) -> markdown (RESULTS.md's tables and prose) -> build (the whole report) ;
           reproduce (the published grid, and our runs of it)

A package module imports only modules on its own floor or below (base < data < training < grid < report) and
never a script; the scripts import the package only.
"""

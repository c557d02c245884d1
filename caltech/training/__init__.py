"""One run: its device and precision (runtime), network (model), optimiser and schedule (optim), loops
(engine), metrics, checkpoints, TensorBoard logs (tblog), outputs, flags made ready (setup), and the run
itself (fit); evaluate.py's tables (evaluation)."""

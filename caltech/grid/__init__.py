"""The grid: each trial's identity and name (trials), the results CSV (results), the grid run (search), its
printed tables (tables) and the optional Ray Tune backend (ray_tune)."""

"""The report: run folders read back (runs), what each run is and which are chosen (catalogue, labels), the
figures (figures), RESULTS.md's text (markdown), the reproduction check (reproduce), and the whole (build)."""

"""Measurement tools and studies: the benchmark, evaluation image sets, heatmap and colour
studies. Run from the project root as `python -m tools.NAME`; never imported by the app.
Their extra packages are in tools/requirements.txt."""

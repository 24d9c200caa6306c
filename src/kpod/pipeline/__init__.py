"""`kpod run`, `kpod demo` and `kpod compare`: the stages chained in one run directory."""

"""Event sources, one module (or package) each, all behind the protocols in `base`; `registry` lists them."""

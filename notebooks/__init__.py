"""The lab-manual notebooks, shipped with liqlab so that ``liqlab app`` can serve the published ones."""

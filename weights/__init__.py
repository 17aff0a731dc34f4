"""Model files shipped with f2f (see PROVENANCE.md); installed as the package `f2fcli.weights`."""

"""Renderers that turn a source face crop plus driven face meshes into output frames."""

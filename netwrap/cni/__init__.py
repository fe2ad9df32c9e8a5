"""netwrap as a CNI plugin (``netwrap-cni``): see :mod:`netwrap.cni.plugin`."""

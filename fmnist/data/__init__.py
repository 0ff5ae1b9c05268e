"""Data in: dataset specs, sources (folder, URL), file formats (IDX, CSV, CIFAR pickles),
verification, the prepared splits. Uses only fmnist.core."""

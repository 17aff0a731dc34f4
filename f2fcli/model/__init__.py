"""The Face2Face^rho networks: landmark images, motion module, rendering module, SPADE."""

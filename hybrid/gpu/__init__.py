"""The Helmholtz solve path with its vectors on a torch device (a GPU): grid stencils, the
shifted-Laplacian multigrid cycle, flexible GMRES and the learned correction. Runs on the CPU too
(the tests), where the numpy path of ``solvers.linear`` is the one to use."""

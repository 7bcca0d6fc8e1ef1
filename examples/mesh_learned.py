"""A learned operator on a gmsh mesh: read a .msh, train AlgebraicMgNO, solve classically and predict, write.

The mesh user's whole flow on the L-shaped domain (boundaries ``notch`` and ``outer`` are gmsh physical groups):

1. write ``l_shape.msh`` and read it back with ``meshes.read`` (the names come from the physical groups);
2. two-phase Darcy data ``-div(a grad u) = 1``, ``u = 0`` on every named boundary, as nodal P1 values
   (``hybrid generate darcy --mesh l_shape.msh``);
3. train AlgebraicMgNO, the multigrid operator on the AMG hierarchy of the mesh's P1 matrix
   (``hybrid train algebraic-mgno --data darcy.h5 --out run``);
4. for a coefficient the data does not hold (sample ``samples`` of the same random stream), solve with
   ``solvers.Darcy`` and ``Dirichlet(name, 0)`` on the named boundaries (CG + AMG), and predict with the
   trained run (``hybrid.training.nodal.predict_nodal``, checkpoint loaded with ``weights_only=True``);
5. print the relative L2 error of the prediction (P1, lumped-mass weights: the training's metric) and write
   coefficient, FEM solution, prediction and their difference to ``result.xdmf`` (ParaView, ``meshes.read`` /
   ``meshes.read_fields``), ``result.vtu`` and ``result.png``.

Run: ``python examples/mesh_learned.py [h [samples [epochs]]]`` (defaults 0.1 300 40: 406 nodes, about a minute on
one core; ``python examples/mesh_learned.py 0.25 60 10`` takes seconds). Writes into ``out/mesh_learned``.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

import meshes
import solvers
from solvers import Dirichlet
from solvers.linear import AMG, CG, LinearProblem, solve

#: AlgebraicMgNO: ~21k parameters at h = 0.1, Ruge-Stuben AMG (`hybrid bench operators --domains` uses ~90k)
MODEL = {"channels": 16, "layers": 3, "stencils": 2, "amg": "rs", "levels": [[1, 0]] * 4 + [[2, 0]]}


def main(h: float = 0.1, samples: int = 300, epochs: int = 40, out: str = "out/mesh_learned", seed: int = 0):
    import dolfinx.fem as fem

    from hybrid.training import TrainConfig, default_sizes, load
    from hybrid.training.nodal import lumped_mass, predict_nodal, train_on_mesh_data
    from solvers.data import generate
    from solvers.sampling import make_field

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # 1. a gmsh file with named boundaries, and the mesh read back from it
    msh = meshes.write(out / "l_shape.msh", meshes.l_shape(h))
    mesh = meshes.read(msh)
    print(f"{msh}: {mesh.num_vertices} nodes, {mesh.num_cells} triangles, boundaries {dict(mesh.boundaries)}")
    # 2. training data on that mesh: u = 0 on every named boundary (`hybrid generate darcy --mesh`)
    data = out / "darcy.h5"
    data.unlink(missing_ok=True)  # generate() would resume a file of the same settings and refuse one of others
    gen = generate("darcy", samples, 0, data, seed=seed, params={"mesh": str(msh.resolve())}, progress=False)
    print(f"{data}: {samples} two-phase Darcy samples ({gen.get('seconds', 0.0):.1f} s)")
    # 3. AlgebraicMgNO trained on it (`hybrid train algebraic-mgno`): 90% train + validation, 10% test
    n_train, n_test, _ = default_sizes(samples, None, None)
    cfg = TrainConfig(epochs=epochs, batch_size=10, lr=3e-3, n_train=n_train, n_test=n_test, seed=seed)
    run = out / "run"
    print(f"training AlgebraicMgNO: {epochs} epochs on samples 0-{n_train - 1} (a tenth validates) ...", flush=True)
    s = train_on_mesh_data("algebraic-mgno", MODEL, data, run, cfg)
    print(f"{run}: algebraic-mgno, {s['params']} parameters, AMG levels {s['levels']}, {s['epochs_run']} epochs in "
          f"{s['train_s']:.1f} s; test relative L2 {s['test_rel_l2_mean']:.4f} ({n_test} samples)")
    # 4. an unseen coefficient (the data holds samples 0..samples-1 of this stream), as a P1 function
    V = fem.functionspace(mesh.mesh, ("Lagrange", 1))
    a = fem.Function(V, name="coefficient")
    a.interpolate(make_field("two-phase", seed=seed, index=samples))
    # classical: P1 FEM with the named boundaries, CG + smoothed-aggregation AMG
    bcs = [Dirichlet(name, 0.0) for name in mesh.boundaries]
    system = solvers.Darcy(mesh, a=a, f=1.0, bcs=bcs).assemble()
    sol = solve(LinearProblem.from_system(system), CG(precond=AMG("sa")), rtol=1e-10)
    assert sol.retcode.name == "Success", sol
    u_fem = system.function(sol.x)
    # learned: the run's checkpoint (weights_only=True) applied to the nodal values, in the model's node order
    loaded = load(run / "best.pt")
    coords = np.asarray(loaded[1].config.coordinates)
    if not np.allclose(V.tabulate_dof_coordinates()[:, :2], coords):
        raise RuntimeError(f"{msh}: the mesh read back numbers its nodes unlike the training data")
    t = time.perf_counter()
    pred = predict_nodal(loaded, a.x.array)
    predict_ms = 1e3 * (time.perf_counter() - t)
    u_nn = fem.Function(V, name="learned")
    u_nn.x.array[:] = pred
    diff = fem.Function(V, name="difference")
    diff.x.array[:] = pred - u_fem.x.array
    # 5. the error, and the fields written
    m = lumped_mass(coords, np.asarray(loaded[1].config.cells))
    rel_l2 = float(np.sqrt(m @ diff.x.array ** 2 / (m @ u_fem.x.array ** 2)))
    print(f"unseen coefficient (seed {seed}, index {samples}): FEM {sol.iterations} CG+AMG iterations; "
          f"AlgebraicMgNO {predict_ms:.1f} ms; relative L2 error of the prediction {rel_l2:.4f}")
    fields = {"coefficient": a, "fem": u_fem, "learned": u_nn, "difference": diff}
    meshes.write(out / "result.xdmf", mesh, fields)
    meshes.write(out / "result.vtu", mesh, fields)
    from meshes.plot import plot_fields

    plot_fields(out / "result.png", {"coefficient a": a, "FEM u": u_fem, "AlgebraicMgNO u": u_nn,
                                     "prediction - FEM": diff})
    summary = {"h": h, "nodes": mesh.num_vertices, "samples": samples, "epochs": s["epochs_run"],
               "params": s["params"], "amg_levels": s["levels"], "train_s": s["train_s"],
               "test_rel_l2": s["test_rel_l2_mean"], "unseen_index": samples, "cg_iterations": sol.iterations,
               "rel_l2": rel_l2, "predict_ms": predict_ms, "seconds": time.perf_counter() - t0}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}/: l_shape.msh, darcy.h5, run/, result.xdmf (+ .h5), result.vtu, result.png, summary.json "
          f"({summary['seconds']:.0f} s in all)")
    return summary


if __name__ == "__main__":
    args = sys.argv[1:4]
    main(*[kind(a) for kind, a in zip((float, int, int), args)])

"""Continued VBPR with weight decay on E (β_E) from the sparse3 VBPR checkpoint of
reproduce_sparse3.py (cached in /tmp/repro): how much of AMR's gain plain regularisation of E gives."""
import json, numpy as np, amrlite
from amrlite import Model, evaluate
ds = amrlite.load_dataset("/work/shared/data/ml100k"); sp = ds.split("sparse3")
v0 = Model.load("/tmp/repro/vbpr300-final.npz")
for rege in (0.01, 0.1, 1.0):
    m = Model("vbpr", backend="numpy", epochs=200, lr=0.01, reg=1e-3, reg_e=rege, eval_every=0).fit(ds, split=sp, init=v0)
    m.save(f"/tmp/repro/vbprcont-rege{rege}-final.npz")
    t = evaluate(m, ds, sp)
    print(json.dumps({"reg_e": rege, "HR@10": t["HR@10"], "NDCG@10": t["NDCG@10"], "warm": t["warm"]["HR@10"], "cold": t["cold"]["HR@10"],
       "Ec": float(np.linalg.norm(ds.features @ m.params["E"].T, axis=1).mean())}), flush=True)

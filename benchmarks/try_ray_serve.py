"""Why the Ray lane uses plain actors, not Ray Serve: Serve's start cost, what it binds, and
the per-request overhead of a DeploymentHandle with serve.multiplexed, against a plain actor
call in the same run (docs/scale.md). Not part of the suite and not a dependency: it needs
`pip install "ray[serve]"` (use a scratch venv). Loopback only, no HTTP proxy.

Run: `python benchmarks/try_ray_serve.py` (prints one JSON line)."""
import os, time, subprocess, re, json, statistics
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
t0 = time.perf_counter()
import ray
from ray import serve
ray.init(num_cpus=2, object_store_memory=80 << 20, include_dashboard=False, log_to_driver=False,
         configure_logging=False, _node_ip_address="127.0.0.1")
t_init = time.perf_counter() - t0

@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.5})
class Model:
    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str):
        return {"id": model_id}

    async def __call__(self, x):
        model = await self.get_model(serve.get_multiplexed_model_id())
        return (model["id"], x, os.getpid())

t1 = time.perf_counter()
serve.start(proxy_location="Disabled")
t_serve = time.perf_counter() - t1
t2 = time.perf_counter()
handle = serve.run(Model.bind(), name="trial", route_prefix=None)
t_deploy = time.perf_counter() - t2
lat = []
for i in range(40):
    s = time.perf_counter()
    handle.options(multiplexed_model_id="a" if i % 2 else "b").remote(i).result()
    lat.append(time.perf_counter() - s)
@ray.remote(num_cpus=0.5)
class Plain:
    def call(self, x): return x
p = Plain.remote(); ray.get(p.call.remote(0))
plain = []
for i in range(40):
    s = time.perf_counter(); ray.get(p.call.remote(i)); plain.append(time.perf_counter() - s)
me = os.getpid()
kids = subprocess.run(f"pstree -p {me}", shell=True, capture_output=True, text=True).stdout
pids = set(re.findall(r"\((\d+)\)", kids))
listen = [l.split()[3] for l in subprocess.run("ss -ltnp", shell=True, capture_output=True, text=True).stdout.splitlines()
          if any(f"pid={p}," in l for p in pids)]
print(json.dumps({"ray_init_s": round(t_init, 1), "serve_start_s": round(t_serve, 1), "deploy_s": round(t_deploy, 1),
                  "serve_handle_ms_median": round(1000 * statistics.median(lat[5:]), 2),
                  "plain_actor_ms_median": round(1000 * statistics.median(plain[5:]), 2),
                  "listening": sorted(set(a.rsplit(":", 1)[0] for a in listen)),
                  "load": os.getloadavg()}))
serve.shutdown(); ray.shutdown()

"""Cost of DPO steps on the story model for one recipe variant (how generators/story_dpo.py's
recipe was chosen; the numbers are in benchmarks/results/dpo.json, "step_profile").

    python benchmarks/profile_dpo.py --pairs 12 --threads 1 --compact --layers 20-29
    (pairs: a JSON-lines file of {request, chosen, rejected}, e.g. bench_dpo.py's pairs.jsonl, --pairs-file)

Prints one RESULT line: CPU and wall seconds per pair (model load excluded), per step, peak memory.
--profile adds torch.profiler's table of the heaviest ops.
"""
import argparse, json, time, os, sys, resource
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=16)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--bs", type=int, default=4)
ap.add_argument("--r", type=int, default=8)
ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
ap.add_argument("--layers", default="")  # e.g. "15-29"
ap.add_argument("--precompute", action="store_true")
ap.add_argument("--pre_bs", type=int, default=32)
ap.add_argument("--maxlen", type=int, default=768)
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--profile", action="store_true")
ap.add_argument("--compact", action="store_true", help="score completion tokens only (the studio recipe)")
ap.add_argument("--pairs-file", default=os.path.expanduser("~/.cache/studio-bench/dpo/pairs.jsonl"))
a = ap.parse_args()
import torch
torch.set_num_threads(a.threads)
from datasets import Dataset
import datasets
from peft import LoraConfig
from trl import DPOConfig, DPOTrainer
from transformers import TrainerCallback, AutoModelForCausalLM
from transformers.utils import logging as hf_logging
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from generators.story_dpo import StoryDPO, _joined, read_pairs, story_prompt
if a.compact:
    from generators.story_dpo import _score_completions_only
    _score_completions_only().__enter__()  # for the whole run
hf_logging.set_verbosity_error(); datasets.disable_progress_bars()
t = StoryDPO(); t.load(torch.device("cpu")); folder, tok, _ = t._base
pairs = read_pairs(a.pairs_file)[: a.pairs]
rows = [{"prompt": (q := story_prompt(tok, p)), "chosen": _joined(q, p["chosen"]), "rejected": _joined(q, p["rejected"])}
        for p in pairs]
layers = None
if a.layers:
    lo, hi = map(int, a.layers.split("-")); layers = list(range(lo, hi + 1))
lora = LoraConfig(r=a.r, lora_alpha=2 * a.r, lora_dropout=0.0, target_modules=a.targets.split(","),
                  layers_to_transform=layers, task_type="CAUSAL_LM")
steps = []
class T(TrainerCallback):
    def on_step_begin(self, *x, **k): steps.append([time.perf_counter(), time.process_time()])
    def on_step_end(self, *x, **k): steps[-1] += [time.perf_counter(), time.process_time()]
import tempfile
w = tempfile.mkdtemp()
c0, t0 = time.process_time(), time.perf_counter()
cfg = DPOConfig(output_dir=w, per_device_train_batch_size=a.bs, num_train_epochs=a.epochs, learning_rate=5e-4, beta=0.1,
                max_length=a.maxlen, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True,
                gradient_checkpointing=False, use_cpu=True, seed=1, bf16=False, data_seed=1, dataloader_num_workers=0,
                precompute_ref_log_probs=a.precompute, precompute_ref_batch_size=a.pre_bs)
model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
t1, c1 = time.perf_counter(), time.process_time()
tr = DPOTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=lora, callbacks=[T()])
for q in (PrinterCallback, ProgressCallback): tr.remove_callback(q)
t2, c2 = time.perf_counter(), time.process_time()
if a.profile:
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tr.train()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))
else:
    tr.train()
t3, c3 = time.perf_counter(), time.process_time()
st = [(s[2] - s[0], s[3] - s[1]) for s in steps]
first = st[0]; rest = st[1:] or st
res = dict(vars(a), load_s=round(t1 - t0, 1), init_s=round(t2 - t1, 1), init_cpu=round(c2 - c1, 1), train_s=round(t3 - t2, 1),
           train_cpu=round(c3 - c2, 1), step_wall=round(sum(x for x, _ in rest) / len(rest), 2),
           step_cpu=round(sum(y for _, y in rest) / len(rest), 2), total_s=round(t3 - t0, 1),
           cpu_per_pair=round((c3 - c1) / a.pairs / a.epochs, 2), wall_per_pair=round((t3 - t1) / a.pairs / a.epochs, 2),
           loadavg=os.getloadavg()[0], maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print("RESULT", json.dumps(res), flush=True)

"""Worker scaling of three kinds of objective, 1 to 16 worker processes, 32 trials each:
the custom example (a program built on kiln), the built-in trainer (MLP 64-256-256-10 on the
digits, 10 epochs, batch 32) and a command trial (examples/python/sine_stdlib.py). Best of two
runs per point. For machines with many cores (kiln's own benches measure 1 against 2 workers):

    cargo build --release --bin kiln --example custom_objective
    python3 benches/scaling.py target/release        # the folder holding kiln and examples/

Run it from the repository's root.
"""
import os, subprocess, sys, time
B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release")
root = os.getcwd()
custom = open("examples/custom_objective.toml").read().replace('kind = "median"', 'kind = "none"').replace("epochs = 30", "epochs = 300").replace("trials = 12", "trials = 32")
open("/tmp/custom.toml", "w").write(custom)
builtin = f'''name = "scaling"
seed = 1
[objective]
metric = "val_accuracy"
[budget]
trials = 32
[data]
path = "{root}/experiments/data/digits.csv"
target = "label"
task = "classification"
[model]
hidden = 256
[train]
epochs = 10
batch_size = 32
[space]
learning_rate = {{ log_uniform = [1e-4, 1e-2] }}
dropout = {{ uniform = [0.0, 0.3] }}
'''
open("/tmp/builtin.toml", "w").write(builtin)
command = open("examples/python/sine_stdlib.toml").read().replace("trials = 12", "trials = 32").replace('"sine_stdlib.py"', f'"{root}/examples/python/sine_stdlib.py"').replace('kind = "median"', 'kind = "none"').replace('kind = "tpe"', 'kind = "random"')
open("/tmp/command.toml", "w").write(command)
print("cores", os.cpu_count(), flush=True)
for name, prog, f in [("custom", f"{B}/examples/custom_objective" if os.path.exists(f"{B}/examples/custom_objective") else f"{B}/custom_objective", "/tmp/custom.toml"), ("builtin", f"{B}/kiln", "/tmp/builtin.toml"), ("command", f"{B}/kiln", "/tmp/command.toml")]:
    base = None
    for w in [1, 2, 4, 8, 16]:
        best = 1e9
        for _ in range(2):
            t = time.time()
            subprocess.run([prog, "run", f, "--results", f"/tmp/{name}{w}", "--workers", str(w), "-q"], check=True)
            best = min(best, time.time() - t)
            subprocess.run(["rm", "-rf", f"/tmp/{name}{w}"])
        base = base or best
        print(f"{name} workers={w} {best:.2f}s {32*3600/best:.0f} trials/h {base/best:.2f}x", flush=True)

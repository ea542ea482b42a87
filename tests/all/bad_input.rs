//! A wrong experiment never panics, hangs or writes a half-made results folder: each of these
//! malformed files gets exit code 2 and one clear message naming the file and line.

use crate::common::{data, run, text, write};
use std::path::Path;

/// A valid experiment that each case breaks in one way.
fn base() -> String {
    format!(
        r#"name = "bad"
seed = 1

[objective]
metric = "val_accuracy"
direction = "maximize"

[budget]
trials = 2
workers = 1

[data]
path = "{iris}"
target = "label"
task = "classification"
split = {{ train = 0.6, val = 0.2, test = 0.2 }}

[model]
hidden = 16

[train]
epochs = 2
optimizer = "adamw"

[space]
learning_rate = {{ log_uniform = [1e-4, 1e-1] }}
"#,
        iris = data("iris.csv")
    )
}

/// (what is wrong, the file, a fragment the message must contain, the line it must name)
fn cases(dir: &Path) -> Vec<(&'static str, String, &'static str, Option<usize>)> {
    let mut cases = general_cases(dir);
    let b = base();
    let with = |from: &str, to: &str| {
        assert!(b.contains(from), "{from}");
        b.replacen(from, to, 1)
    };
    if !cfg!(feature = "cuda") {
        cases.push((
            "a backend this kiln was built without",
            with("optimizer = \"adamw\"", "optimizer = \"adamw\"\nbackend = \"cuda\""),
            "backend `cuda` needs kiln built with its feature: cargo build --release --features cuda",
            Some(24),
        ));
    }
    if !Path::new("/proc/driver/nvidia/gpus").exists() {
        cases.push((
            "all the devices of a machine without a GPU",
            with("workers = 1", "workers = 1\ndevices = \"all\""),
            "`devices = \"all\"` found no GPU",
            Some(11),
        ));
    }
    cases
}

/// The cases whose answer does not depend on the build or the machine.
fn general_cases(dir: &Path) -> Vec<(&'static str, String, &'static str, Option<usize>)> {
    let b = base();
    let with = |from: &str, to: &str| {
        assert!(b.contains(from), "{from}");
        b.replacen(from, to, 1)
    };
    let space = |line: &str| format!("{b}{line}\n");
    let function = "name = \"f\"\n[objective]\nmetric = \"value\"\nkind = \"function\"\n";
    let zdt = "name = \"z\"\n[objective]\nkind = \"function\"\nfunction = \"zdt1\"\nmetric = [\"f1\", \"f2\"]\n";
    let zdt_space = "[space]\nx1 = { uniform = [0.0, 1.0] }\nx2 = { uniform = [0.0, 1.0] }\n";
    let non_numeric = write(dir, "words.csv", "a,b,label\n1,x,0\n2,3,1\n");
    let tiny = write(dir, "tiny.csv", "a,label\n1,0\n2,1\n3,2\n");
    let only_val = write(
        dir,
        "only_val.csv",
        "a,label,split\n1,x,train\n2,y,train\n3,x,val\n4,z,val\n5,y,val\n",
    );
    let duplicated = write(dir, "twice.csv", "a,b,a,label\n1,2,3,x\n4,5,6,y\n");
    // What pandas' `to_csv` writes by default, and what reading and writing it again gives.
    let indexed = write(dir, "indexed.csv", ",a,b,label\n0,1,2,x\n1,4,5,y\n");
    let reindexed = write(
        dir,
        "reindexed.csv",
        "Unnamed: 0,a,b,label\n0,1,2,x\n1,4,5,y\n",
    );
    // The command cases' script exists: each is refused for what it names.
    write(dir, "train.py", "");
    let fifo = dir.join("fifo.csv");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; creates a FIFO nobody will ever write.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    vec![
        (
            "a syntax error",
            with("name = \"bad\"", "name = \"bad"),
            "",
            Some(1),
        ),
        (
            "an unknown section",
            format!("{b}[trainer]\nepochs = 3\n"),
            "Did you mean `train`?",
            Some(27),
        ),
        (
            "an unknown key in [train]",
            with("optimizer = \"adamw\"", "learnin_rate = 0.1"),
            "Did you mean `learning_rate`?",
            Some(23),
        ),
        (
            "an unknown key in [objective]",
            with("metric = ", "metrc = "),
            "Did you mean `metric`?",
            Some(5),
        ),
        (
            "a key in the wrong section",
            with("hidden = 16", "epochs = 16"),
            "belongs in [train]",
            Some(19),
        ),
        (
            "a string for an integer setting",
            with("epochs = 2", "epochs = \"two\""),
            "`epochs` must be an integer",
            Some(22),
        ),
        (
            "a string for the seed",
            with("seed = 1", "seed = \"one\""),
            "invalid type",
            Some(2),
        ),
        (
            "a reversed range",
            space("dropout = { uniform = [0.5, 0.1] }"),
            "reversed range",
            Some(27),
        ),
        (
            "an empty integer range",
            space("layers = { int = [3, 3] }"),
            "empty or reversed range",
            Some(27),
        ),
        (
            "log_uniform from 0",
            space("weight_decay = { log_uniform = [0.0, 0.1] }"),
            "both bounds > 0",
            Some(27),
        ),
        (
            "log_uniform below 0",
            with("[1e-4, 1e-1]", "[-1e-4, 1e-1]"),
            "both bounds > 0",
            Some(26),
        ),
        (
            "an empty choice",
            space("batch_size = { choice = [] }"),
            "`choice` is empty",
            Some(27),
        ),
        (
            "an unknown metric",
            with("metric = \"val_accuracy\"", "metric = \"val_acc\""),
            "Did you mean `val_accuracy`?",
            Some(5),
        ),
        (
            "an unknown direction",
            with("\"maximize\"", "\"maximise\""),
            "use `maximize`, `minimize`. Did you mean `maximize`?",
            Some(6),
        ),
        (
            "an unknown sampler",
            format!("{b}[sampler]\nkind = \"bayes\"\n"),
            "unknown sampler `bayes`",
            Some(28),
        ),
        (
            "a reduction factor of 1",
            format!("{b}[pruner]\nkind = \"asha\"\nreduction_factor = 1\n"),
            "`reduction_factor` must be an integer >= 2",
            Some(29),
        ),
        (
            "an unknown pruner",
            format!("{b}[pruner]\nkind = \"sometimes\"\n"),
            "unknown pruner",
            Some(28),
        ),
        (
            "an unknown optimizer",
            with("\"adamw\"", "\"adamx\""),
            "`optimizer` must be one of",
            Some(23),
        ),
        (
            "an unknown optimizer in the space",
            space("optimizer = { choice = [\"sgd\", \"lion\"] }"),
            "got `lion`",
            Some(27),
        ),
        (
            "an unknown model kind",
            with("hidden = 16", "kind = \"transformer\""),
            "`kind` must be one of",
            Some(19),
        ),
        (
            "a missing data file",
            with(&data("iris.csv"), "/nonexistent/iris.csv"),
            "cannot read the data file",
            Some(13),
        ),
        (
            "a data path that is a folder",
            with(&data("iris.csv"), "/tmp"),
            "cannot read the data file",
            Some(13),
        ),
        (
            "a data path that is a device that never ends",
            with(&data("iris.csv"), "/dev/zero"),
            "not a regular file",
            Some(13),
        ),
        (
            "a data path that is a FIFO nobody writes",
            with(&data("iris.csv"), fifo.to_str().unwrap()),
            "not a regular file",
            Some(13),
        ),
        (
            "a class with no training rows",
            with(&data("iris.csv"), only_val.to_str().unwrap()).replace(
                "split = { train = 0.6, val = 0.2, test = 0.2 }",
                "split_column = \"split\"",
            ),
            "class `z` of the target `label` has no training rows",
            Some(16),
        ),
        (
            "two columns of the same name",
            with(&data("iris.csv"), duplicated.to_str().unwrap()),
            "column `a` appears twice",
            Some(13),
        ),
        (
            "a target not in the CSV",
            with("target = \"label\"", "target = \"species\""),
            "column `species` is not in",
            Some(14),
        ),
        (
            "a split column not in the CSV",
            with(
                "split = { train = 0.6, val = 0.2, test = 0.2 }",
                "split_column = \"fold\"",
            ),
            "column `fold` is not in",
            Some(16),
        ),
        (
            "a categorical column not in the CSV",
            with(
                "task = \"classification\"",
                "task = \"classification\"\ncategorical = [\"colour\"]",
            ),
            "column `colour` is not in",
            Some(16),
        ),
        (
            "a function without its name",
            format!("{function}[space]\nx1 = {{ uniform = [0.0, 1.0] }}\n"),
            "needs `function = \"branin\"`",
            Some(4),
        ),
        (
            "a function input that is not x1, x2, ...",
            format!(
                "{function}function = \"sphere\"\n[space]\nlearning_rate = {{ uniform = [0.0, 1.0] }}\n"
            ),
            "a function's inputs are `x1`, `x2`, ...; `learning_rate` is not one",
            Some(7),
        ),
        (
            "a trainer's section with another objective",
            with(
                "direction = \"maximize\"",
                "direction = \"maximize\"\nkind = \"function\"\nfunction = \"sphere\"",
            ),
            "[data] belongs to the built-in trainer",
            Some(14),
        ),
        (
            "an objective the program does not know",
            with("direction = \"maximize\"", "direction = \"maximize\"\nkind = \"sinus\""),
            "unknown objective `sinus`",
            Some(7),
        ),
        (
            "a command without its metrics",
            "name = \"c\"\n[objective]\nmetric = \"val_loss\"\ncommand = [\"python3\", \"train.py\"]\n[space]\nx = { uniform = [0.0, 1.0] }\n".to_string(),
            "needs `metrics` in [objective]",
            Some(2),
        ),
        (
            "a command's metric that it does not report",
            "name = \"c\"\n[objective]\nmetric = \"val_los\"\ncommand = [\"python3\", \"train.py\"]\nmetrics = [\"val_loss\"]\n[space]\nx = { uniform = [0.0, 1.0] }\n".to_string(),
            "Did you mean `val_loss`?",
            Some(3),
        ),
        (
            "an option the command objective does not know",
            "name = \"c\"\n[objective]\nmetric = \"val_loss\"\ncommand = [\"python3\", \"train.py\"]\nmetrics = [\"val_loss\"]\ngrase = \"5s\"\n[space]\nx = { uniform = [0.0, 1.0] }\n".to_string(),
            "Did you mean `grace`?",
            Some(6),
        ),
        (
            "asha without the epochs of a trial",
            "name = \"c\"\n[objective]\nmetric = \"val_loss\"\ncommand = [\"python3\", \"train.py\"]\nmetrics = [\"val_loss\"]\n[pruner]\nkind = \"asha\"\n[space]\nx = { uniform = [0.0, 1.0] }\n".to_string(),
            "set `epochs` in [objective]",
            Some(7),
        ),
        (
            "a condition on a key the space does not have",
            space("momentum = { uniform = [0.5, 0.9], when = { optimiser = [\"sgd\"] } }"),
            "`optimiser` is not a key of [space]",
            Some(27),
        ),
        (
            "a condition on a value outside the parent's choices",
            space("optimizer = { choice = [\"sgd\", \"adamw\"] }\nmomentum = { uniform = [0.5, 0.9], when = { optimizer = [\"adam\"] } }"),
            "is not one of the choices of `optimizer`",
            Some(28),
        ),
        (
            "a condition on a range, not a choice",
            space("dropout = { uniform = [0.0, 0.5], when = { learning_rate = [0.1] } }"),
            "not a `choice`",
            Some(27),
        ),
        (
            "conditions that go round",
            space("hidden = { choice = [8, 16], when = { layers = [1] } }\nlayers = { choice = [1, 2], when = { hidden = [8] } }"),
            "go round",
            Some(27),
        ),
        (
            "a pandas index column without a name",
            with(&data("iris.csv"), indexed.to_str().unwrap()),
            "column 1 of",
            Some(13),
        ),
        (
            "a pandas index column named `Unnamed: 0`",
            with(&data("iris.csv"), reindexed.to_str().unwrap()),
            "or leave the column out with `ignore = [\"Unnamed: 0\"]`",
            Some(13),
        ),
        (
            "a fixed setting that the fixed optimizer ignores",
            with("optimizer = \"adamw\"", "optimizer = \"adam\"\nmomentum = 0.9"),
            "`momentum` is set, but optimizer = \"adam\" ignores it (only sgd, rmsprop use it)",
            Some(24),
        ),
        (
            "a fixed setting that the default schedule ignores",
            with("optimizer = \"adamw\"", "optimizer = \"adamw\"\nstep_size = 5"),
            "`step_size` is set, but lr_schedule = \"constant\" ignores it",
            Some(24),
        ),
        (
            "a fixed setting that no searched optimizer uses",
            space("optimizer = { choice = [\"adam\", \"adamw\"] }").replace("optimizer = \"adamw\"\n", "momentum = 0.9\n"),
            "optimizer = \"adam\" or \"adamw\" ignores it",
            Some(23),
        ),
        (
            "a searched setting that the fixed optimizer ignores",
            space("momentum = { uniform = [0.5, 0.9] }"),
            "optimizer = \"adamw\" ignores it",
            Some(27),
        ),
        (
            "an enqueued value outside its range",
            format!("{b}\n[[enqueue]]\nlearning_rate = 0.5\n"),
            "`0.5` is outside log_uniform [0.0001, 0.1]",
            Some(29),
        ),
        (
            "an enqueued key the space does not have",
            format!("{b}\n[[enqueue]]\nlearning_rte = 0.01\n"),
            "`learning_rte` is not a key of [space]",
            Some(29),
        ),
        (
            "a constraint on a metric the objective does not report",
            format!("{b}\n[[constraint]]\nmetric = \"val_los\"\nmax = 0.5\n"),
            "unknown metric `val_los`",
            Some(29),
        ),
        (
            "a constraint without a bound",
            format!("{b}\n[[constraint]]\nmetric = \"n_params\"\n"),
            "has no bound",
            Some(29),
        ),
        (
            "a constraint whose min is above its max",
            format!("{b}\n[[constraint]]\nmetric = \"n_params\"\nmin = 10\nmax = 5\n"),
            "no trial could keep both",
            Some(30),
        ),
        (
            "a warm start from a folder that holds no sweep",
            format!("{b}[sampler]\nkind = \"tpe\"\nwarm_start = [\"results/nothing-here\"]\n"),
            "holds no sweep",
            Some(29),
        ),
        (
            "a warm start for a sampler that has no model",
            format!("{b}[sampler]\nkind = \"random\"\nwarm_start = [\"results/nothing-here\"]\n"),
            "does not learn from history",
            Some(29),
        ),
        (
            "a tpe gamma outside (0, 1)",
            format!("{b}[sampler]\nkind = \"tpe\"\ngamma = 1.5\n"),
            "`gamma` must be a fraction",
            Some(29),
        ),
        (
            "a non-numeric feature",
            with(&data("iris.csv"), &non_numeric.display().to_string()),
            "words.csv:2: column `b` holds `x`",
            None,
        ),
        (
            "fewer rows than a split needs",
            with(&data("iris.csv"), &tiny.display().to_string()),
            "validation rows",
            Some(16),
        ),
        (
            "a split that does not add up",
            with("test = 0.2 }", "test = 0.3 }"),
            "add up to",
            Some(16),
        ),
        (
            "an unknown task",
            with("task = \"classification\"", "task = \"clustering\""),
            "unknown task",
            Some(15),
        ),
        (
            "dropout of 1.5",
            with("hidden = 16", "dropout = 1.5"),
            "`dropout` must be in [0, 1)",
            Some(19),
        ),
        (
            "a negative learning rate",
            with("optimizer = \"adamw\"", "learning_rate = -0.1"),
            "`learning_rate` must be > 0",
            Some(23),
        ),
        (
            "a space key that is no setting",
            space("widthh = { int = [8, 64] }"),
            "not a setting the built-in trainer can search",
            Some(27),
        ),
        (
            "a bare value in the space",
            space("dropout = 0.1"),
            "must be a distribution",
            Some(27),
        ),
        (
            "two distributions in one key",
            space("dropout = { uniform = [0.0, 0.5], choice = [0.1] }"),
            "several distributions",
            Some(27),
        ),
        (
            "a step on a float range",
            space("dropout = { uniform = [0.0, 0.5], step = 1 }"),
            "applies to `int` ranges only",
            Some(27),
        ),
        (
            "a float range for an integer setting",
            space("batch_size = { uniform = [16.0, 64.0] }"),
            "integer setting",
            Some(27),
        ),
        (
            "zero trials",
            with("trials = 2", "trials = 0"),
            "`trials` must be at least 1",
            Some(9),
        ),
        (
            "zero workers",
            with("workers = 1", "workers = 0"),
            "`workers` must be at least 1",
            Some(10),
        ),
        (
            "a grid over a continuous range without points",
            format!("{b}[sampler]\nkind = \"grid\"\n"),
            "needs `points = N`",
            Some(26),
        ),
        (
            "an unknown early-stopping monitor",
            format!("{b}[early_stopping]\nmonitor = \"val_los\"\n"),
            "Did you mean `val_loss`?",
            Some(28),
        ),
        (
            "a regression loss for classification",
            with("optimizer = \"adamw\"", "loss = \"mse\""),
            "does not fit a classification task",
            Some(23),
        ),
        (
            "a name with a slash",
            with("name = \"bad\"", "name = \"a/b\""),
            "invalid name",
            Some(1),
        ),
        (
            "an unreadable duration",
            with("workers = 1", "workers = 1\nmax_time = \"soon\""),
            "cannot read `soon` as a duration",
            Some(11),
        ),
        (
            "a negative max_failures",
            with("workers = 1", "workers = 1\nmax_failures = -1"),
            "an integer >= 1, or 0 never to stop",
            Some(11),
        ),
        (
            "negative retries",
            with("workers = 1", "workers = 1\nretries = -2"),
            "an integer from 0 to 100",
            Some(11),
        ),
        (
            "a target that is not a number",
            with("workers = 1", "workers = 1\ntarget = nan"),
            "`target` must be a finite number",
            Some(11),
        ),
        (
            "no_improvement of zero",
            with("workers = 1", "workers = 1\nno_improvement = 0"),
            "an integer >= 1",
            Some(11),
        ),
        (
            "a negative regret_bound",
            with("workers = 1", "workers = 1\nregret_bound = -0.5"),
            "a positive difference in the objective's units",
            Some(11),
        ),
        (
            "a stopping rule for two objectives",
            format!("{zdt}[budget]\ntarget = 0.5\n{zdt_space}"),
            "judges one objective's best trial, and this sweep has 2",
            Some(7),
        ),
        (
            "a password in [storage] url",
            format!("{b}[storage]\nurl = \"postgres://kiln:hunter2@db:5432/kiln\"\n"),
            "PGPASSWORD",
            Some(28),
        ),
        (
            "directions that do not match the metrics",
            with(
                "metric = \"val_accuracy\"\ndirection = \"maximize\"",
                "metric = [\"val_accuracy\", \"val_loss\"]\ndirection = [\"maximize\"]",
            ),
            "one direction per metric",
            Some(6),
        ),
        (
            "n_params as the first of several objectives",
            with(
                "metric = \"val_accuracy\"\ndirection = \"maximize\"",
                "metric = [\"n_params\", \"val_accuracy\"]\ndirection = [\"minimize\", \"maximize\"]",
            ),
            "put `n_params` after it",
            Some(5),
        ),
        (
            "an unknown metric among several",
            with(
                "metric = \"val_accuracy\"\ndirection = \"maximize\"",
                "metric = [\"val_accuracy\", \"val_los\"]\ndirection = [\"maximize\", \"minimize\"]",
            ),
            "unknown metric `val_los`",
            Some(5),
        ),
        (
            "a pruner with several objectives",
            format!(
                "{}[pruner]\nkind = \"median\"\n",
                with(
                    "metric = \"val_accuracy\"\ndirection = \"maximize\"",
                    "metric = [\"val_accuracy\", \"n_params\"]\ndirection = [\"maximize\", \"minimize\"]",
                )
            ),
            "a pruner stops trials that are behind on one objective",
            Some(28),
        ),
        (
            "a population for a sampler that has none",
            format!("{b}[sampler]\nkind = \"tpe\"\npopulation = 10\n"),
            "`population` is the generation size of NSGA-II",
            Some(29),
        ),
        (
            "devices for a CPU backend",
            with("workers = 1", "workers = 1\ndevices = [\"cuda:0\"]"),
            "`devices` are GPUs: set `[train] backend",
            Some(11),
        ),
        (
            "a device name the trainer does not know",
            with("workers = 1", "workers = 1\ndevices = [\"gpu0\"]")
                .replace("optimizer = \"adamw\"", "optimizer = \"adamw\"\nbackend = \"wgpu\""),
            "`gpu0` is not a device name; the trainer takes `cuda:N`, `wgpu`",
            Some(11),
        ),
        (
            "a device of another backend",
            with("workers = 1", "workers = 1\ndevices = [\"wgpu\", \"cuda:1\"]")
                .replace("optimizer = \"adamw\"", "optimizer = \"adamw\"\nbackend = \"wgpu\""),
            "device `cuda:1` belongs to the `cuda` backend, and [train] backend is `wgpu`",
            Some(11),
        ),
        (
            "devices that are neither names nor all",
            with("workers = 1", "workers = 1\ndevices = \"every\""),
            "or \"all\" (every GPU found)",
            Some(11),
        ),
        (
            "trials_per_device without devices",
            with("workers = 1", "workers = 1\ntrials_per_device = 2"),
            "needs `devices",
            Some(11),
        ),
        (
            "more workers than the devices take",
            format!(
                "{function}[budget]\nworkers = 3\ndevices = [\"cuda:0\"]\n[space]\nx1 = {{ uniform = [0.0, 1.0] }}\n"
            ).replace("metric = \"value\"\nkind = \"function\"\n", "metric = \"value\"\nkind = \"function\"\nfunction = \"sphere\"\n"),
            "the devices take only 1 at once",
            Some(7),
        ),
        (
            "the test split as the objective",
            with("metric = \"val_accuracy\"", "metric = \"test_accuracy\""),
            "would tune on the test split",
            Some(5),
        ),
        (
            "a constraint on the test split",
            format!("{b}[[constraint]]\nmetric = \"test_loss\"\nmax = 1.0\n"),
            "would tune on the test split",
            Some(28),
        ),
        (
            "a CMA-ES setting for another sampler",
            format!("{b}[sampler]\nkind = \"tpe\"\nsigma0 = 0.3\n"),
            "`sigma0` is a setting of CMA-ES",
            Some(29),
        ),
        (
            "sep-CMA for another sampler",
            format!("{b}[sampler]\nkind = \"gp\"\nseparable = true\n"),
            "`separable` is a setting of CMA-ES",
            Some(29),
        ),
        (
            "an unknown CMA-ES restart",
            format!("{b}[sampler]\nkind = \"cmaes\"\nrestart = \"bipop\"\n"),
            "unknown restart `bipop`",
            Some(29),
        ),
        (
            "a lag without deterministic",
            format!("{b}[sampler]\nkind = \"tpe\"\nlag = 2\n"),
            "add `deterministic = true`",
            Some(29),
        ),
        (
            "a pruner in a deterministic sweep",
            format!("{b}[sampler]\nkind = \"tpe\"\ndeterministic = true\n[pruner]\nkind = \"median\"\n"),
            "remove [pruner] or `deterministic`",
            Some(31),
        ),
        (
            "a ZDT objective maximised",
            format!("{zdt}direction = [\"maximize\", \"minimize\"]\n{zdt_space}"),
            "cannot be maximised",
            Some(6),
        ),
        (
            "a ZDT input outside [0, 1]",
            format!(
                "{zdt}{}",
                zdt_space.replace("x2 = { uniform = [0.0, 1.0] }", "x2 = { uniform = [0.0, 2.0] }")
            ),
            "is defined on [0, 1]",
            Some(8),
        ),
        (
            "NaN among the choices",
            space("dropout = { choice = [0.5, 0.25, nan] }"),
            "`NaN` is not a finite number",
            Some(27),
        ),
        (
            "infinity as the only choice",
            space("dropout = { choice = [inf] }"),
            "is not a finite number",
            Some(27),
        ),
        (
            "an infinite bound",
            space("dropout = { uniform = [-inf, 1.0] }"),
            "the bounds must be finite numbers",
            Some(27),
        ),
        (
            "bounds whose distance overflows",
            space("dropout = { uniform = [-1e308, 1e308] }"),
            "the bounds must be finite numbers less than 1.8e308 apart",
            Some(27),
        ),
        (
            "an int range as wide as a 64-bit integer",
            space("batch_size = { int = [-9223372036854775808, 9223372036854775807] }"),
            "wider than a 64-bit integer can count",
            Some(27),
        ),
        (
            "a [storage] url that is not PostgreSQL",
            format!("{b}[storage]\nurl = \"mysql://kiln@db/kiln\"\n"),
            "not a PostgreSQL URL",
            Some(28),
        ),
    ]
}

#[test]
fn each_malformed_experiment_exits_2_with_one_located_message_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    assert!(cases.len() >= 25);
    for (i, (what, experiment, fragment, line)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("case{i}.toml"), experiment);
        let results = dir.path().join(format!("results{i}"));
        for command in ["run", "check"] {
            let output = run(&[
                command,
                file.to_str().unwrap(),
                "--results",
                results.to_str().unwrap(),
            ][..if command == "run" { 4 } else { 2 }]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{what} ({command}): {}",
                text(&output)
            );
            assert!(stderr.starts_with("error: "), "{what}: {stderr}");
            assert!(
                stderr.contains(fragment),
                "{what}: expected `{fragment}` in {stderr}"
            );
            if let Some(line) = line {
                let at = format!("case{i}.toml:{line}:");
                assert!(stderr.contains(&at), "{what}: expected `{at}` in {stderr}");
            }
            assert!(
                stderr.lines().count() <= 3,
                "{what}: one short paragraph, got {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            assert!(!results.exists(), "{what}: the results folder was created");
        }
    }
}

#[test]
fn a_missing_experiment_file_and_bad_arguments_exit_2() {
    let output = run(&["run", "/nonexistent/x.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the experiment file"));
    let output = run(&["run", "--workers", "many", "x.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = run(&["resume", "/nonexistent/results"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no sweep"));
}

"""The training core every trainer shares, and PPO's pieces.

- training/layout.py: a run folder's files and their names (RunFolder).
- training/state.py: TrainerState, what a run carries across updates and --resume.
- training/run.py: the run's lifecycle: where it starts from, its folder, TensorBoard, the
  database and its fighter, Ctrl-C, the progress line, checkpoints, summary.json.
- training/tensorboard.py: the run's TensorBoard writer.
- training/episodes.py: episode statistics from the env's reports.
- training/vecenv.py: the vector env, seeded alike on every backend, and its saved state.
- training/ppo.py: rollout storage, GAE, the PPO loss and update (train.py's loop uses them).
- training/evaluator.py, training/selection.py: scoring checkpoints as a run trains, and best.pt.
- training/imitation.py, training/demonstrations.py: behavioural cloning on the same lifecycle.
- training/distributed.py, training/shared_reduce.py: runs across processes under torchrun,
  and the shared-memory gradient sum of one machine's ranks.
- training/launch.py: train.py in a child process (population-based training uses it).
- training/bench.py, training/bench_imitation.py: benchmarks of training and of loading frames.

train.py is the command line and PPO's loop; docs/training.md is the guide.
"""

#!/usr/bin/env bash
# The data-parallel tests (tests/dist/CMakeLists.txt): dist_test.sh CASE WORKDIR, with MPIRUN,
# DIST_DRIVER and RESNET_CLI in the environment. Exit 0 on success; on failure prints why.
set -u
case_name=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
mpirun() { "$MPIRUN" --oversubscribe --allow-run-as-root --bind-to none -np "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

case "$case_name" in
  identical)
    # (1) After 2 epochs x 4 steps with per-rank BatchNormalization, every parameter (moving
    # statistics included) is bit-identical on both ranks: the driver gathers a hash of all
    # parameter bytes from every rank and fails when they differ.
    mpirun 2 "$DIST_DRIVER" train --bn local --batch 16 --samples 64 --epochs 2 > out.txt 2>&1 \
      || { cat out.txt; fail "2-rank run failed"; }
    cat out.txt
    grep -q "parameters identical on 2 rank(s)" out.txt || fail "no identical-parameters line"
    ;;
  match_nobn|match_syncbn)
    # (2) Two ranks with global batch 15 (uneven shards 8 + 7, and a last batch of 4 = 2 + 2)
    # reach the weights of one process with batch 15, within 1e-5.
    bn=none
    [ "$case_name" = match_syncbn ] && bn=sync
    "$DIST_DRIVER" train --bn $bn --batch 15 --samples 64 --epochs 2 --params one.txt > one.log 2>&1 \
      || { cat one.log; fail "single-process run failed"; }
    # 1 KB gradient buckets: several non-blocking allreduces in flight during backward.
    RESNET_DIST_BUCKET_KB=1 mpirun 2 -x RESNET_DIST_BUCKET_KB \
      "$DIST_DRIVER" train --bn $bn --batch 15 --samples 64 --epochs 2 --params two.txt \
      > two.log 2>&1 || { cat two.log; fail "2-rank run failed"; }
    cat one.log two.log
    "$DIST_DRIVER" compare one.txt two.txt 1e-5 || fail "2 ranks differ from 1 process"
    ;;
  kill|hang)
    # (3) Rank 1 kills itself (SIGKILL) after step 2 -- or, for "hang", stops (SIGSTOP) so that
    # only the collective timeout can notice: the job must end, non-zero, within 60 s, with a
    # message saying what happened; never hang.
    fault=kill
    [ "$case_name" = hang ] && fault=stop
    start=$(date +%s)
    RESNET_DIST_TIMEOUT=10 \
      timeout -s KILL 100 "$MPIRUN" --oversubscribe --allow-run-as-root --bind-to none -np 2 \
      -x RESNET_DIST_TIMEOUT \
      "$DIST_DRIVER" train --bn sync --batch 8 --samples 64 --epochs 1000 \
      --kill-rank 1 --kill-step 2 --fault $fault > out.txt 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    cat out.txt
    echo "exit status $rc after ${elapsed}s"
    [ "$rc" -ne 0 ] || fail "the job exited 0"
    [ "$elapsed" -lt 60 ] || fail "the job took ${elapsed}s (limit 60s): it hung"
    grep -q "rank 1 .* after step 2" out.txt || fail "the fault was not injected"
    if [ "$fault" = kill ]; then
      grep -Eqi "exited on signal 9|killed|waited more than|MPI error" out.txt \
        || fail "no message about the failure"
    else
      grep -q "rank 0 of 2 waited more than 10 s" out.txt || fail "no timeout message from rank 0"
    fi
    ;;
  resume)
    # (4) A checkpoint (weights + optimizer state) written by rank 0 of a 2-rank run resumes in
    # one process, continuing from the saved epoch.
    mpirun 2 "$DIST_DRIVER" train --bn local --batch 16 --samples 64 --epochs 1 --save ck.rnw \
      --params saved.txt > two.log 2>&1 || { cat two.log; fail "2-rank run failed"; }
    [ -f ck.rnw ] || fail "no checkpoint written"
    ls ck.rnw* | grep -q tmp && fail "temporary files left"
    "$DIST_DRIVER" train --bn local --batch 16 --samples 64 --epochs 0 --resume ck.rnw \
      --params loaded.txt > one0.log 2>&1 || { cat one0.log; fail "loading in 1 process failed"; }
    "$DIST_DRIVER" compare saved.txt loaded.txt 0 || fail "the loaded weights differ"
    "$DIST_DRIVER" train --bn local --batch 16 --samples 64 --epochs 1 --resume ck.rnw \
      > one.log 2>&1 || { cat one.log; fail "resuming in 1 process failed"; }
    cat two.log one.log
    grep -q "resumed from ck.rnw at epoch 1" one.log || fail "not resumed at epoch 1"
    grep -q "Epoch 2/2" one.log || fail "did not continue with epoch 2"
    ;;
  cli)
    # The CLI: 2 ranks with --sync-bn write --out (rank 0 alone prints); one process resumes.
    if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
      mpirun 2 "$RESNET_CLI" train --dataset fashion-mnist --model resnet20 --limit 64 \
        --batch-size 32 --epochs 1 --sync-bn --threads 1 --verbose 2 --out cli.rnw \
        --history hist > cli2.log 2>&1 || { cat cli2.log; fail "CLI 2-rank run failed"; }
      cat cli2.log
      grep -q "x 2 ranks (global batch 32, SyncBN)" cli2.log || fail "not a 2-rank SyncBN run"
      [ "$(grep -c '^Epoch 1/1' cli2.log)" = 1 ] || fail "progress printed by more than rank 0"
      [ "$(grep -c '^saved cli.rnw' cli2.log)" = 1 ] || fail "not saved exactly once"
      [ -f hist.csv ] && [ -f hist.png ] || fail "no history files"
      ls | grep -q '\.tmp-' && fail "temporary files left"
      "$RESNET_CLI" train --dataset fashion-mnist --model resnet20 --limit 64 --batch-size 32 \
        --epochs 2 --threads 1 --verbose 2 --resume cli.rnw > cli1.log 2>&1 \
        || { cat cli1.log; fail "CLI resume in 1 process failed"; }
      cat cli1.log
      grep -q "resumed from cli.rnw at epoch 1" cli1.log || fail "CLI did not resume at epoch 1"
    else
      echo "Fashion-MNIST not installed: CLI part skipped"
    fi
    ;;
  *)
    fail "unknown case $case_name"
    ;;
esac
echo "PASS: $case_name"

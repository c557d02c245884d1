#!/usr/bin/env bash
# The from-scratch study of task1/README.md section 6.3, one train.py run after another, resumable:
# rerun this script after a kill and it skips finished runs (metrics.json) and resumes the rest.
#   nohup bash task1/study/run_study.sh screen > study.log 2>&1 &     # stage 1: 112 px screening
#   bash task1/study/run_study.sh seeds RECIPE                        # stage 2: 224 px, seeds 107-109 (a grid)
#   bash task1/study/run_study.sh curve RECIPE                        # stage 3: 112 px, 30/60/120 epochs (a grid)
#   bash task1/study/run_study.sh screen60                            # stage 4a: F's weight decay, batch size
#   bash task1/study/run_study.sh levers                              # stage 4b: each lever alone on F, wd 0.2
#   bash task1/study/run_study.sh final                               # stage 5: 4's choices on seeds 108, 109
#   bash task1/study/run_study.sh fixres                              # evaluation size chosen on val, tested
#   bash task1/study/run_study.sh collect [GRID_LOG...]               # finished runs' records into task1/study/
# Every run: --scratch, seed 107 unless said, 2 CPU threads, logs in runs/study, checkpoints in checkpoints/study.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMMON=(--scratch --device cpu --threads 2 --logdir runs/study --ckpt-dir checkpoints/study)
FAIR=(--optimizer adamw --weight-decay 0.05 --schedule cosine --warmup-epochs 1 --label-smoothing 0.1
      --train-crop resized --min-scale 0.35)

declare -A RECIPES=(
  [published]="--lr-fc 1e-3 --lr-base 1e-4"
  [adam1e-3]="--lr-fc 1e-3 --lr-base 1e-3"
  [adamw1e-3]="--lr-fc 1e-3 --lr-base 1e-3 ${FAIR[*]}"
  [adamw2e-3]="--lr-fc 2e-3 --lr-base 2e-3 ${FAIR[*]}"
  [adamw4e-3]="--lr-fc 4e-3 --lr-base 4e-3 ${FAIR[*]}"
  [sgd0.1]="--lr-fc 0.1 --lr-base 0.1 --optimizer sgd --momentum 0.9 --weight-decay 5e-4 --schedule cosine
            --warmup-epochs 1 --label-smoothing 0.1 --train-crop resized --min-scale 0.35"
  [adamw1e-3_scale0.08]="--lr-fc 1e-3 --lr-base 1e-3 ${FAIR[*]} --min-scale 0.08"
  [adamw1e-3_trivial]="--lr-fc 1e-3 --lr-base 1e-3 ${FAIR[*]} --auto-augment trivial"
  [adamw1e-3_cutmix]="--lr-fc 1e-3 --lr-base 1e-3 ${FAIR[*]} --cutmix 1.0"
  [adamw1e-3_ls0]="--lr-fc 1e-3 --lr-base 1e-3 ${FAIR[*]} --label-smoothing 0"
)
SCREEN=(published adam1e-3 adamw1e-3 adamw2e-3 adamw4e-3 sgd0.1 adamw1e-3_scale0.08 adamw1e-3_trivial
        adamw1e-3_cutmix adamw1e-3_ls0)
# Stage 4 (issue 30), 112 px, 60 epochs, seed 107, one grid each. 4a: recipe F with another weight decay or
# batch size. 4b: each lever alone on F with the weight decay 4a chose on validation (0.2). Stage 5: 4a's choice,
# then 4b's (the cosine loss), on two more seeds (seed 107 is their stage 4 run). The evaluation size (FixRes)
# changes no weight: `fixres` scores every finished run's best.pth at other sizes instead of training again.
WD_SCREEN=("--batch-size 16" "--weight-decay 0.02 0.2")
LEVERS=("--loss cosine" "--ema 0.998" "--dropout 0.3")
CHOSEN=(--image-size 112 --epochs 60 ${RECIPES[adamw1e-3]} --weight-decay 0.2)
SIZES=(112 128 144 160)

run() {  # run NAME FLAGS...: train, resume, or skip a finished run
  local name=$1; shift
  if [[ -f checkpoints/study/$name/metrics.json ]]; then echo "== $name: done"; return; fi
  local resume=()
  [[ -f checkpoints/study/$name/last.pth ]] && resume=(--resume)
  echo "== $name: $* $(date +%H:%M:%S)"
  mkdir -p checkpoints/study/$name
  python train.py "${COMMON[@]}" "$@" --run-name "$name" "${resume[@]}" 2>&1 \
    | grep --line-buffered -v -E '^\s*$|it/s\]|s/it\]' | tee -a "checkpoints/study/$name/console.log"
}

case "${1:-screen}" in
  screen) for r in "${SCREEN[@]}"; do run "s112_$r" --image-size 112 --epochs 30 ${RECIPES[$r]}; done ;;
  # stages 2 and 3 are grids: their results CSVs hold each run's full recipe, and rerunning resumes them
  seeds)  python grid_search.py "${COMMON[@]}" --image-size 224 --epochs 30 --seeds 107 108 109 ${RECIPES[$2]} \
            --results task1/study/seeds.csv ;;
  curve)  python grid_search.py "${COMMON[@]}" --image-size 112 --epochs 30 60 120 ${RECIPES[$2]} \
            --results task1/study/curve.csv ;;
  screen60) for change in "${WD_SCREEN[@]}"; do
              python grid_search.py "${COMMON[@]}" --image-size 112 --epochs 60 ${RECIPES[adamw1e-3]} $change \
                --results task1/study/screen60.csv
            done ;;
  levers) for lever in "${LEVERS[@]}"; do
            python grid_search.py "${COMMON[@]}" "${CHOSEN[@]}" $lever --results task1/study/screen60.csv
          done ;;
  final)  python grid_search.py "${COMMON[@]}" "${CHOSEN[@]}" --seeds 108 109 --results task1/study/final.csv
          python grid_search.py "${COMMON[@]}" "${CHOSEN[@]}" --loss cosine --seeds 108 109 \
            --results task1/study/final.csv ;;
  fixres) for done in checkpoints/study/*/metrics.json; do  # finished runs: the size chosen on validation, tested
            run=$(dirname "$done") best=$(dirname "$done")/best.pth
            for size in "${SIZES[@]}"; do
              [[ -f $run/eval_val_${size}px.json ]] || python evaluate.py --ckpt "$best" --split val --device cpu \
                --eval-image-size "$size" --json "$run/eval_val_${size}px.json" > /dev/null
            done
            size=$(python -c "import json, sys; print(max(sys.argv[1:], key=lambda s: (json.load(open(
              f'$run/eval_val_{s}px.json'))['val_acc'], -int(s))))" "${SIZES[@]}")  # ties: the smaller size
            [[ -f $run/eval_test_${size}px.json ]] || python evaluate.py --ckpt "$best" --device cpu \
              --eval-image-size "$size" --json "$run/eval_test_${size}px.json" > /dev/null
          done ;;
  collect)  # events, hparams.json, console log and metrics.json of every finished run (no checkpoint): stage 1
    # into task1/study/screen/, the runs of final.csv and screen60.csv into final/ and screen60/, other grids'
    # into grids/. Grids print every run to one console: `collect GRID_LOG...` cuts those at "=== run" first.
    for log in "${@:2}"; do
      awk '/^=== run [0-9]+\/[0-9]+: [^ ]+ ===$/ { out = "checkpoints/study/" $4 "/console.log" }
           out && !/^=== run / { print > out }
           /^run [^ ]+: best epoch/ { out = "" }' "$log"  # the run's last line; the grid's tables follow
    done
    for done in checkpoints/study/*/metrics.json; do
      name=$(basename "$(dirname "$done")")
      stage=grids
      [[ $name == s112_* ]] && stage=screen
      for table in screen60 final; do grep -q "$name" "task1/study/$table.csv" 2>/dev/null && stage=$table; done
      dest=task1/study/$stage/$name
      mkdir -p "$dest"
      cp "runs/study/$name"/events.out.tfevents.* "runs/study/$name/hparams.json" "checkpoints/study/$name/metrics.json" \
         "$dest/"
      [[ -f checkpoints/study/$name/console.log ]] && cp "checkpoints/study/$name/console.log" "$dest/"
      cp checkpoints/study/"$name"/eval_*px.json "$dest/" 2>/dev/null || true
    done ;;
  *) echo "usage: $0 screen | seeds RECIPE | curve RECIPE | screen60 | levers | final | fixres | collect [GRID_LOG...]" >&2; exit 2 ;;
esac

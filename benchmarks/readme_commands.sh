#!/usr/bin/env bash
# Every `python -m search` command of the README, each on the smoke profile, in a scratch folder:
# prints one row per command (exit status, wall seconds, last line). Data paths that do not exist
# here (/data/...) must end in a one-line `error:` with status 2.
#   bash benchmarks/readme_commands.sh [OUT_DIR]
set -u
out=${1:-$(mktemp -d)}
mkdir -p "$out"
i=0
run() {
  i=$((i + 1))
  local t0 rc
  t0=$(date +%s)
  python -m search "$@" > "$out/out$i.log" 2>&1
  rc=$?
  echo "| $i | $rc | $(( $(date +%s) - t0 )) | \`$*\` | $(grep -v '^\s*$' "$out/out$i.log" | tail -1 | cut -c1-120) |"
}
echo "| # | rc | s | command | last line |"
echo "| --- | --- | --- | --- | --- |"
run --help
run task=sr device=s21 experiment=smoke --cfg job
run task=sr device=s21 budget_ms=16 experiment=smoke hydra.run.dir="$out/r2"
run task=sr device=cpu experiment=smoke hydra.run.dir="$out/r3"
run task=sr device=s21 strategy=nsga2 experiment=smoke hydra.run.dir="$out/r4"
run task=sr device=s21 strategy=dnas experiment=smoke hydra.run.dir="$out/r5"
run task=sr device=cpu strategy=allinone experiment=smoke hydra.run.dir="$out/r6"
run task=vit device=cpu experiment=smoke hydra.run.dir="$out/r7"
run task=vit device=cpu strategy=dnas experiment=smoke hydra.run.dir="$out/r8"
run task=sr experiment=smoke hydra.run.dir="$out/smoke"
run task=sr data.train_root=/data/DIV2K/HR 'data.eval_roots={set14: /data/Set14, urban100: /data/Urban100}' hydra.run.dir="$out/r10"
run task=vit device=cpu model.name=deit_small_patch16_224 model.checkpoint=deit_small.pth task.model.img_size=224 \
  task.model.num_classes=1000 data.root=/data/imagenet hydra.run.dir="$out/r11"
run task=sr device=s21 experiment=smoke 'export.formats=[onnx,tflite]' 'export.precision=[fp32,fp16,int8]' hydra.run.dir="$out/r12"
run -m task=sr device=s21 experiment=smoke budget_ms=16,33.3,66 hydra/launcher=joblib hydra.sweep.dir="$out/m1"
run -m task=sr device=s21 experiment=smoke strategy=tpe,nsga2,random,dnas,allinone hydra.sweep.dir="$out/m2"
run -m task=vit device=cpu experiment=smoke strategy=tpe,nsga2,random,dnas hydra.sweep.dir="$out/m3"

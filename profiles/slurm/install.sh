#!/usr/bin/env bash
# Make the literal `snakemake --profile slurm` find this profile: Snakemake looks for a bare profile name in
# ./slurm, ${XDG_CONFIG_HOME:-~/.config}/snakemake/slurm and /etc/xdg/snakemake/slurm, not in profiles/.
# Links this folder there; a profile of yours already at that place is left alone (use --profile profiles/slurm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake/slurm"
if [ -L "$dest" ] || [ ! -e "$dest" ]; then
  mkdir -p "$(dirname "$dest")"
  ln -sfn "$here" "$dest"
  echo "[slurm] profile: $dest -> $here"
elif [ "$(readlink -f "$dest")" != "$here" ]; then
  echo "[slurm] $dest exists and is not this project's: left alone; use --profile $here" >&2
fi

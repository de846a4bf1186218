# Source from the repository root (bash or zsh): `source env.sh`. The environment the Makefile sets, for the
# commands typed by hand in README.md: nothing phones home, BentoML's store stays in .bentoml/ (git-ignored),
# and .venv/bin comes first on PATH (dvc, bentoml, tabrepro, moto_server). Safe to source more than once.
if [ -n "${BASH_SOURCE:-}" ]; then _tabrepro_env="${BASH_SOURCE[0]}"; elif [ -n "${ZSH_VERSION:-}" ]; then
  _tabrepro_env="${(%):-%x}"; else _tabrepro_env="env.sh"; fi
_tabrepro_root="$(cd "$(dirname "$_tabrepro_env")" && pwd)"
export DVC_NO_ANALYTICS=1
export BENTOML_DO_NOT_TRACK=True
export ORT_DISABLE_TELEMETRY=1
export OTEL_SDK_DISABLED=true
export BENTOML_HOME="$_tabrepro_root/.bentoml"
case ":$PATH:" in
  *":$_tabrepro_root/.venv/bin:"*) ;;
  *) export PATH="$_tabrepro_root/.venv/bin:$PATH" ;;
esac
unset _tabrepro_env _tabrepro_root

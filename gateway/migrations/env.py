from servicekit.migrations import run_env

run_env("gateway")

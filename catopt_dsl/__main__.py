from catopt_dsl.cli import run

run()

from .cli import main

main(prog_name="f2f")

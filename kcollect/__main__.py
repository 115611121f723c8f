from kcollect.cli.main import main

main()

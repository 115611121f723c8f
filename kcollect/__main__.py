from kcollect.cli import main

main()

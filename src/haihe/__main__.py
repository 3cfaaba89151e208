from haihe.cli import main

main()

from services.generate.server import main

main()

from services.retrieve.server import main

main()

from services.embed.server import main

main()

KeysatWebhooks.main()

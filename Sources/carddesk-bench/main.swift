print("carddesk-bench: see issue 2")

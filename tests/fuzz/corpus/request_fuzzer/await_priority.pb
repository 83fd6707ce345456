
crawl8
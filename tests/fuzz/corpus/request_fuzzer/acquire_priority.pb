
crawl 0

crawl
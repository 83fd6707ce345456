
crawl
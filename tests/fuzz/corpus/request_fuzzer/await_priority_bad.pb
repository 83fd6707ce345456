
crawl88
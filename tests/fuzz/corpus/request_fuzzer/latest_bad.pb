
crawl	¼®Î—	
module github.com/kiwicache/kiwicache/tools/mutate

go 1.26.0

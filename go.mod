module github.com/vigil-ha/vigil

go 1.26

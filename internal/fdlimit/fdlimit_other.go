//go:build !linux

package fdlimit

func get() (Limit, error) { return Limit{}, ErrUnsupported }

func set(Limit) error { return ErrUnsupported }

package testenv

import (
	"context"
	"os/exec"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

func goCommand(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	return string(out), err
}

package httpapi_test

import (
	"errors"

	"github.com/hashicorp/vault/api"
)

var apiInit = api.InitRequest{SecretShares: 3, SecretThreshold: 2}

func statusCode(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

package httpapi_test

import "github.com/hashicorp/vault/api"

var apiInit = api.InitRequest{SecretShares: 3, SecretThreshold: 2}

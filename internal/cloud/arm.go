package cloud

import "net/http"

// ARMHandler returns the Resource Manager handler.
func (s *Server) ARMHandler() http.Handler { return http.HandlerFunc(s.serveARM) }

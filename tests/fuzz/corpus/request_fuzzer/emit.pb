
apiw